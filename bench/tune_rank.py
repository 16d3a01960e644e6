"""Grid search of the ranking knobs on cached embeddings (how the defaults were chosen).

Usage: python bench/tune_rank.py FILE.jsonl [FILE.jsonl ...]
Prints the mean ROUGE-1 per file for each setting, best first by the mean over files.
The defaults in rank.py were picked for doing well across news and science, not for the
top of one file.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

from docsum.eval.summarize import RougeScorer, read_examples
from docsum.summarizer.rank import RankConfig, centrality, select
from docsum.summarizer.sentences import normalize, split_sentences
from docsum.summarizer.settings import SummarizerSettings
from docsum.summarizer.summarize import Summarizer


def main(paths: list[str]) -> None:
    model = Summarizer(SummarizerSettings())
    model.load()
    assert model.encoder is not None
    data = []
    for p in paths:
        fmt, examples = read_examples(Path(p))
        k = 1 if "xsum" in p else fmt.default_k
        cached = []
        for ex in examples:
            doc = split_sentences(normalize(ex.text), 500)
            emb = model.encoder.encode([s.text for s in doc])
            cached.append((doc, emb @ emb.T, ex.references))
        data.append((Path(p).name, k, cached))
    grid = itertools.product(
        [-2.0, -1.0, -0.5, 0.0],  # backward_weight
        [0.0, 0.3, 0.6],  # threshold
        [0.0, 0.3, 0.5],  # redundancy
    )
    rows = []
    for bw, th, red in grid:
        cfg = RankConfig(backward_weight=bw, threshold=th, redundancy=red)
        per_file = []
        for _name, k, cached in data:
            scorer = RougeScorer()
            for doc, sim, refs in cached:
                if not doc:
                    continue
                scores = centrality(sim, cfg)
                picks = select(scores, sim, k, [s.words for s in doc], cfg)
                scorer.add([doc[i].text for i in picks], refs)
            per_file.append(scorer.result()["rouge1"])
        rows.append((float(np.mean(per_file)), cfg, per_file))
    rows.sort(key=lambda r: -r[0])
    names = [d[0] for d in data]
    print("mean", *names, "backward threshold redundancy", sep="\t")
    for mean, cfg, per_file in rows[:25]:
        print(f"{mean:.2f}", *per_file, cfg.backward_weight, cfg.threshold, cfg.redundancy, sep="\t")


if __name__ == "__main__":
    main(sys.argv[1:])
