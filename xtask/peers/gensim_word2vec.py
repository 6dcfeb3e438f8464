"""gensim's word2vec, the peer of `cargo xtask bench word2vec`.

Trains on CORPUS (one sentence per line, tokens separated by spaces; gensim's `corpus_file`
mode, its fastest single-machine path) with the hyperparameters given, then evaluates the vectors
as gensim does (`evaluate_word_analogies` restricted to the 30,000 most frequent words,
`evaluate_word_pairs` on WordSim-353 and SimLex-999), and prints one JSON object. With
`--evaluate-only VECTORS` it trains nothing and evaluates a word2vec file (rensa's, binary),
so the same evaluation code scores both.
"""
import argparse
import json
import logging
import os
import time

from gensim.models import KeyedVectors, Word2Vec


def evaluate(wv, eval_dir):
    score, sections = wv.evaluate_word_analogies(
        os.path.join(eval_dir, "questions-words.txt"), restrict_vocab=30000
    )
    total = next(s for s in sections if s["section"] == "Total accuracy")
    attempted = len(total["correct"]) + len(total["incorrect"])
    out = {"analogy_accuracy": score, "analogy_attempted": attempted}
    for name, file in [("wordsim353", "wordsim353.tsv"), ("simlex999", "simlex999.txt")]:
        pearson, spearman, oov = wv.evaluate_word_pairs(os.path.join(eval_dir, file))
        out[name] = {"spearman": float(spearman.statistic), "pearson": float(pearson.statistic), "oov_percent": oov}
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--corpus")
    p.add_argument("--eval-dir", required=True)
    p.add_argument("--model", choices=["cbow", "skipgram"], default="cbow")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--evaluate-only")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.evaluate_only:
        wv = KeyedVectors.load_word2vec_format(args.evaluate_only, binary=args.evaluate_only.endswith(".bin"))
        print(json.dumps({"evaluation": evaluate(wv, args.eval_dir)}))
        return
    model = Word2Vec(
        vector_size=100, window=5, negative=5, hs=0, sample=1e-3, min_count=5,
        sg=1 if args.model == "skipgram" else 0, workers=args.workers, seed=args.seed,
        epochs=args.epochs, alpha=0.025, min_alpha=0.0001,
    )
    model.build_vocab(corpus_file=args.corpus)
    start = time.perf_counter()
    model.train(
        corpus_file=args.corpus, total_words=model.corpus_total_words,
        epochs=args.epochs,
    )
    seconds = time.perf_counter() - start
    words = model.corpus_total_words * args.epochs
    print(json.dumps({
        "seconds": seconds,
        "words": words,
        "words_per_second": words / seconds,
        "vocabulary": len(model.wv),
        "evaluation": evaluate(model.wv, args.eval_dir),
    }))


if __name__ == "__main__":
    main()
