"""The honest leaderboard's tables from multi-seed runs: mean ± std, ensembles of runs, paired tests.

Run by hand, after ``merkit evaluate --seeds 0,1,2,3,4 --out RUNS/<name>`` for each method on one
dataset (the development set's path is never a default here)::

    .venv/bin/python bench/leaderboard.py RUNS --methods apex_flow_svm,ststnet,sssnet \\
        --ensembles apex_flow_svm+sssnet --baseline ststnet --seeds 0,1,2,3,4

For each seed, each ``a+b`` ensemble is the mean of the runs' probabilities (``merkit compare
--ensemble``, written to ``RUNS/compare/seed<k>/<a+b>``), and every method and ensemble is
compared with ``--baseline`` by ``merkit compare``'s paired permutation test on that seed's
runs. Prints markdown: UF1, UAR and log loss as mean ± std over the seeds with the 95% interval
of the first seed, and each seed's test against the baseline.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from merkit.evaluation.compare import compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="folder holding one multi-seed run folder per method")
    parser.add_argument("--methods", required=True, help="run folders, comma-separated")
    parser.add_argument("--ensembles", default="", help="ensembles of runs to score, comma-separated, each a+b(+c)")
    parser.add_argument("--baseline", required=True, help="the run every other is tested against")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    methods, ensembles = args.methods.split(","), [e for e in args.ensembles.split(",") if e]
    rows: dict[str, list[dict]] = {name: [] for name in methods + ensembles}
    tests: dict[str, list[tuple[float, float]]] = {name: [] for name in methods + ensembles if name != args.baseline}
    for seed in seeds:
        out = args.runs / "compare" / f"seed{seed}"
        paths = {name: args.runs / name / f"seed{seed}" for name in methods}
        for ensemble in ensembles:
            members = [paths[m] for m in ensemble.split("+")]
            compare(members, out=out / f"{ensemble}-members", ensemble=True, n_boot=200, n_perm=200, seed=seed)
            paths[ensemble] = out / f"{ensemble}-members" / "ensemble"
        names = list(paths)
        figures, pairs = compare([paths[n] for n in names], out=out, n_boot=2000, n_perm=5000, seed=seed)
        by_run = dict(
            zip(figures[figures["dataset"] == "all"]["run"], figures[figures["dataset"] == "all"].to_dict("records"))
        )
        for name, path in paths.items():
            rows[name].append(
                by_run[path.name if list(p.name for p in paths.values()).count(path.name) == 1 else str(path)]
            )
        for pair in pairs[pairs["dataset"] == "all"].itertuples():
            a, b = (next(n for n, p in paths.items() if p.name == r or str(p) == r) for r in (pair.run_a, pair.run_b))
            if args.baseline in (a, b) and a != b:
                other, sign = (b, -1) if a == args.baseline else (a, 1)
                tests[other].append((sign * pair.difference, pair.p_value))
    print(
        "| method | UF1 | UAR | log loss | UF1 95% interval (seed " + str(seeds[0]) + ") | "
        f"UF1 - {args.baseline} per seed (p) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, per_seed in rows.items():

        def stat(metric):
            values = np.array([r[metric] for r in per_seed])
            return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"

        first = per_seed[0]
        paired = ", ".join(f"{d:+.3f} ({p:.3f})" for d, p in tests.get(name, []))
        print(
            f"| {name} | {stat('uf1')} | {stat('uar')} | {stat('log_loss')} | [{first['uf1_low']:.3f}, {first['uf1_high']:.3f}] "
            f"| {paired or '-'} |"
        )


if __name__ == "__main__":
    main()
