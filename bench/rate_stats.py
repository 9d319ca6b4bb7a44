"""How often do the rating report's 95% intervals cover the truth when raters and images differ?

Simulates rating studies in *single* mode (every rater answers every question, as in `skingen rate`):
rater r answers question u correctly with probability sigmoid(mu + a_r + b_u), a_r ~ N(0, sd_rater) (some
raters are better judges), b_u ~ N(0, sd_image) (some images are harder). The estimand is the population
accuracy E[sigmoid(mu + a + b)] over new raters and new images (Monte-Carlo, 10^6 draws). For each study
it computes the two intervals `skingen rate report` gives — Wilson over all answers
(``stats.proportion``) and the crossed rater x image bootstrap (``stats.cluster_interval``) — and counts
how often each covers the estimand; with mu = 0 (true accuracy 50%: raters cannot tell) it also counts how
often each wrongly excludes 50% (false "distinguishable" claims; 5% is the nominal rate).

    python bench/rate_stats.py [--studies 400] [--questions 40] [--raters 3,5,10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from skingen.stats import cluster_interval, proportion
from table import print_and_save  # bench/table.py: scripts run with bench/ on sys.path

SETTINGS = [  # (mu, sd_rater, sd_image): independent answers; moderate; strong differences
    (0.0, 0.0, 0.0), (0.0, 0.5, 0.5), (0.0, 1.0, 1.0), (1.0, 0.5, 0.5), (1.0, 1.0, 1.0)]


def truth(mu: float, sd_r: float, sd_u: float, rng: np.random.Generator) -> float:
    z = mu + rng.normal(0, sd_r, 10**6) + rng.normal(0, sd_u, 10**6)
    return float(np.mean(1 / (1 + np.exp(-z))))


def simulate(mu, sd_r, sd_u, raters, questions, studies, seed) -> dict:
    rng = np.random.default_rng(seed)
    target = truth(mu, sd_r, sd_u, rng)
    hits = {"wilson": 0, "cluster": 0}
    rejects = {"wilson": 0, "cluster": 0}
    widths = {"wilson": [], "cluster": []}
    r_idx = np.repeat(np.arange(raters), questions)
    u_idx = np.tile(np.arange(questions), raters)
    for s in range(studies):
        z = mu + rng.normal(0, sd_r, raters)[r_idx] + rng.normal(0, sd_u, questions)[u_idx]
        y = (rng.random(len(z)) < 1 / (1 + np.exp(-z))).astype(float)
        w = proportion(int(y.sum()), len(y))
        intervals = {"wilson": (w["ci_low"], w["ci_high"]),
                     "cluster": cluster_interval(y, r_idx, u_idx, n_boot=1000, seed=s)}
        for name, (low, high) in intervals.items():
            hits[name] += low <= target <= high
            rejects[name] += not (low <= 0.5 <= high)
            widths[name].append(high - low)
    row = {"mu": mu, "sd_rater": sd_r, "sd_image": sd_u, "raters": raters, "questions": questions,
           "studies": studies, "true_accuracy": round(target, 3)}
    for name in hits:
        row[f"{name}_coverage"] = round(hits[name] / studies, 3)
        row[f"{name}_width"] = round(float(np.mean(widths[name])), 3)
        row[f"{name}_excludes_50"] = round(rejects[name] / studies, 3)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=400)
    ap.add_argument("--questions", type=int, default=40)
    ap.add_argument("--raters", default="3,5,10")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = [simulate(mu, sd_r, sd_u, int(r), args.questions, args.studies, seed=1000 * k + int(r))
            for k, (mu, sd_r, sd_u) in enumerate(SETTINGS) for r in args.raters.split(",")]
    print_and_save(rows, ["mu", "sd_rater", "sd_image", "raters", "true_accuracy", "wilson_coverage", "cluster_coverage",
                          "wilson_width", "cluster_width", "wilson_excludes_50", "cluster_excludes_50"], "rate_stats")
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
