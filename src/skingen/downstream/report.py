"""The downstream study's report folder.

- ``results.csv``: one row per trained classifier (arm, fraction, seed, counts, val and test metrics);
- ``summary.csv``: per arm and fraction, each metric averaged over the seeds with a 95% bootstrap
  interval (test images and seeds resampled), and its paired difference to ``real`` (``delta_*``);
- ``per_class.csv``: recall per class (mean over seeds), Wilson 95% interval over that class's test images;
- ``per_skin_tone.csv``: accuracy per ITA category of the test images (when the manifest has
  ``ita_category``, from ``skingen analyze``), Wilson interval likewise;
- ``dark_vs_light.csv``: the subgroup check: accuracy on dark (ITA < 10°: brown and dark categories) and
  light (ITA >= 10°) test images per arm and fraction, with Wilson intervals and counts (when the manifest
  has ``ita``), and each arm's paired difference to ``real`` on the group (``delta_vs_real`` with a 95%
  percentile interval over resampled test images and seeds, :func:`skingen.stats.paired_accuracy_delta`;
  ``per_class.csv`` and ``per_skin_tone.csv`` carry it too);
- ``balanced_accuracy.png``: the lead figure: test balanced accuracy vs fraction of real training data,
  one line per arm, 95% bootstrap bands;
- ``predictions.npz``: test labels and every run's probabilities (recompute anything without retraining);
- ``metrics.png``, ``summary.html``, ``study.json``;
- ``best_classifier/``: the classifier with the best *validation* balanced accuracy over all runs
  (``config.json`` + ``model.safetensors``), for ``skingen evaluate --features classifier:PATH``.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from skingen.nn.classifiers import save_classifier
from skingen.stats import METRICS, bootstrap_metrics, paired_accuracy_delta, wilson_interval
from skingen.downstream.study import StudyConfig, StudyResult
from skingen.imageio import write_image
from skingen.runs import atomic_path, environment_info, read_csv, staged_dir, write_csv, write_json
from skingen.viz import figure_to_image, html_table, write_html

ONE_PANEL_ARMS = 8  # more arms than this: one lead-figure panel per synthetic set
_NAMES = {"balanced_accuracy": "balanced accuracy", "macro_f1": "macro-F1", "auroc": "AUROC"}


def summarise(result: StudyResult, n_boot: int = 1000) -> list[dict]:
    """``summary.csv`` rows: per arm and fraction, metrics with intervals and paired deltas to ``real``."""
    y = result.test.y.numpy()
    rows = []
    fractions = sorted({f for _, f in result.probs})
    for fraction in fractions:
        base = result.probs[("real", fraction)]
        for arm in result.arms:
            p = result.probs[(arm.name, fraction)]
            stats = bootstrap_metrics(y, p, baseline=None if arm.name == "real" else base, n_boot=n_boot)
            runs = [r for r in result.runs if r["arm"] == arm.name and r["fraction"] == fraction]
            row = {"arm": arm.name, "fraction": fraction, "seeds": len(p), "n_real": round(np.mean([r["n_real"] for r in runs]), 1),
                   "n_synthetic": round(np.mean([r["n_synthetic"] for r in runs]), 1),
                   "ratio_actual": round(np.mean([r["ratio_actual"] for r in runs]), 3)}
            for name, s in stats.items():
                row[name] = round(s["value"], 4)
                row[f"{name}_low"] = round(s["low"], 4)
                row[f"{name}_high"] = round(s["high"], 4)
            rows.append(row)
    return rows


DARK_ITA = 10.0  # degrees: below = the "brown" and "dark" ITA categories (skingen.data.skintone)


def ita_group(row: dict[str, str]) -> str:
    """``'dark'`` (ITA < 10°), ``'light'`` or ``'unknown'`` (no measurable ITA) for a manifest row."""
    try:
        ita = float(row.get("ita") or "nan")
    except ValueError:
        return "unknown"
    return "unknown" if np.isnan(ita) else "dark" if ita < DARK_ITA else "light"


def _grouped_accuracy(result: StudyResult, key: str) -> list[dict]:
    """Recall per class (``key='label'``), accuracy per ITA category (``key='ita_category'``) or per
    dark/light group (``key='ita_group'``, :func:`ita_group`)."""
    y = result.test.y.numpy()
    if key == "label":
        groups = np.array([result.labels[i] for i in y])
    elif key == "ita_group":
        groups = np.array([ita_group(r) for r in result.test.rows])
    else:
        groups = np.array([(r.get(key) or "unknown") for r in result.test.rows])
    out = []
    for (arm, fraction), p in sorted(result.probs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        right = p.argmax(-1) == y[None]  # [S,N]
        correct = right.mean(0)  # [N]: share of seeds right on each image
        base = result.probs.get(("real", fraction))
        for g in sorted(set(groups)):
            sel = groups == g
            n = int(sel.sum())
            value = float(correct[sel].mean())
            low, high = wilson_interval(round(value * n), n)
            row = {"arm": arm, "fraction": fraction, key if key != "label" else "class": g, "n_test": n,
                   "recall" if key == "label" else "accuracy": round(value, 4), "low": round(low, 4),
                   "high": round(high, 4)}
            if base is not None and base.shape == p.shape and arm != "real":  # paired with real, same seeds
                d, d_low, d_high = paired_accuracy_delta(right[:, sel], (base.argmax(-1) == y[None])[:, sel],
                                                         result.config.n_boot if result.config else 1000)
                row.update(delta_vs_real=round(d, 4), delta_low=round(d_low, 4), delta_high=round(d_high, 4))
            out.append(row)
    return out


def lead_figure(summary: list[dict], title: str, arms: list | None = None) -> np.ndarray:
    """Test balanced accuracy vs fraction of real training data, one line per arm, 95% bootstrap bands.

    With more than :data:`ONE_PANEL_ARMS` arms (``arms``: the study's :class:`Arm` list) one line per arm is
    unreadable: then one panel per synthetic set (its ratios and combined arms) over the same ``real`` and
    ``real+classical`` lines, all panels on one y-axis."""
    from matplotlib.figure import Figure

    sets = list(dict.fromkeys(a.synthetic for a in arms if a.synthetic)) if arms else []
    base = [a.name for a in arms if not a.synthetic] if arms else []
    if not arms or len(arms) <= ONE_PANEL_ARMS or not sets:
        panels = [("", list(dict.fromkeys(r["arm"] for r in summary)))]
    else:
        panels = [(name, base + [a.name for a in arms if a.synthetic == name]) for name in sets]
    cols = min(3, len(panels))
    rows_n = -(-len(panels) // cols)
    single = len(panels) == 1
    fig = Figure(figsize=(7.5, 4.8) if single else (4.2 * cols, 3.2 * rows_n + 0.6), dpi=100, layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows_n, cols, sharex=True, sharey=True, squeeze=False)).ravel()
    fractions = sorted({r["fraction"] for r in summary})
    for ax, (name, arm_names) in zip(axes, panels):
        for arm in arm_names:
            rows = sorted((r for r in summary if r["arm"] == arm), key=lambda r: r["fraction"])
            f = [r["fraction"] for r in rows]
            style = {"color": "black", "lw": 2.5} if arm == "real" else \
                {"color": "grey", "lw": 1.5, "ls": "--"} if arm == "real+classical" and not single else {"lw": 1.5}
            line, = ax.plot(f, [r["balanced_accuracy"] for r in rows], marker="o", ms=3 if not single else 5,
                            label=arm.replace(f"+{name}@", "+synthetic@") if name else arm, **style)
            ax.fill_between(f, [r["balanced_accuracy_low"] for r in rows], [r["balanced_accuracy_high"] for r in rows],
                            color=line.get_color(), alpha=0.12, lw=0)
        ax.set_xscale("log")
        ax.set_xticks(fractions, labels=[f"{f:g}" for f in fractions])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        if name:
            ax.set_title(f"{name} (@R: R synthetic per real image)", fontsize=9)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    if single:
        axes[0].set_xlabel("fraction of the real training data")
        axes[0].set_ylabel("test balanced accuracy (mean over seeds)")
        axes[0].set_title(title, fontsize=10)
    else:
        fig.supxlabel("fraction of the real training data", fontsize=10)
        fig.supylabel("test balanced accuracy (mean over seeds)", fontsize=10)
        fig.suptitle(title, fontsize=10)
    return figure_to_image(fig)


def metrics_figure(summary: list[dict]) -> np.ndarray:
    """One panel per metric: value vs fraction of real training data, one line per arm, 95% bars."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 3.8), dpi=100, layout="constrained")
    axes = fig.subplots(1, len(METRICS))
    arms = list(dict.fromkeys(r["arm"] for r in summary))
    for ax, m in zip(axes, METRICS):
        for j, arm in enumerate(arms):
            rows = [r for r in summary if r["arm"] == arm]
            f = np.array([r["fraction"] for r in rows]) * (1 + 0.015 * (j - len(arms) / 2))  # dodge the bars
            v = np.array([r[m] for r in rows])
            err = np.abs(np.array([[r[f"{m}_low"] for r in rows], [r[f"{m}_high"] for r in rows]]) - v)
            ax.errorbar(f, v, yerr=err, marker="o", capsize=3, label=arm)
        ax.set_xscale("log")
        fractions = sorted({r["fraction"] for r in summary})
        ax.set_xticks(fractions, labels=[f"{f:g}" for f in fractions])
        ax.minorticks_off()
        ax.set_xlabel("fraction of real training data")
        ax.set_title(f"{_NAMES[m]} (test, 95% CI)")
    axes[-1].legend(fontsize=7, loc="lower right")
    return figure_to_image(fig)


def write_report(result: StudyResult, out: str | Path) -> Path:
    """Write the report folder (module docstring) all at once (staged, then renamed); returns the path of
    ``summary.html``."""
    cfg = replace(result.config, train=result.config.train.resolved())
    with staged_dir(out, "report") as staging:
        _write_report(result, cfg, staging, result.data)
    return Path(out) / "summary.html"


def _write_report(result: StudyResult, cfg: StudyConfig, out: Path, data: str | Path) -> None:
    write_csv(out / "results.csv", result.runs)
    summary = summarise(result, cfg.n_boot)
    write_csv(out / "summary.csv", summary)
    per_class = _grouped_accuracy(result, "label")
    write_csv(out / "per_class.csv", per_class)
    has_ita = any(r.get("ita_category") for r in result.test.rows)
    per_tone = _grouped_accuracy(result, "ita_category") if has_ita else []
    if per_tone:
        write_csv(out / "per_skin_tone.csv", per_tone)
    has_ita_value = any(ita_group(r) != "unknown" for r in result.test.rows)
    dark_light = _grouped_accuracy(result, "ita_group") if has_ita_value else []
    if dark_light:
        write_csv(out / "dark_vs_light.csv", dark_light)
    with atomic_path(out / "predictions.npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, y=result.test.y.numpy(), ids=np.array([r["id"] for r in result.test.rows]),
                            labels=np.array(result.labels),
                            **{f"{arm}|{fraction:g}": p for (arm, fraction), p in result.probs.items()})
    if result.best is not None:
        spec = result.best.spec
        spec = type(spec)(spec.arch, spec.labels, spec.size, None, {"run": result.best_run, "data": str(Path(data).resolve())})
        save_classifier(out / "best_classifier", result.best.model, spec)
    write_json(out / "study.json", {
        "data": str(Path(data).resolve()), "config": asdict(cfg), "labels": list(result.labels),
        "synthetic": [{"name": s.name, "folder": str(s.folder.resolve()), "images": len(s.rows),
                       "generator_check": s.generator_check} for s in result.synthetic],
        "test_images": len(result.test.y), "seconds": round(result.seconds, 1),
        "feature_seconds": round(result.feature_seconds, 1), "best_run": result.best_run,
        "env": environment_info()})
    figure = metrics_figure(summary)
    probe = cfg.train.recipe == "probe"
    detector = (f"{cfg.train.arch} at {cfg.train.size} px" if not probe else
                f"{cfg.train.arch} (logistic regression on frozen features, C chosen on val) at {cfg.train.size} px")
    lead = lead_figure(summary, f"{' / '.join(result.labels)}: {len(result.test.y)} test images, {cfg.seeds} seed(s)\n"
                       f"{detector}", result.arms)
    write_image(out / "balanced_accuracy.png", lead)
    cols = ["arm", "fraction", "n_real", "n_synthetic"] + [f"{_NAMES[m]}" for m in METRICS] + \
        [f"Δ {_NAMES[m]} vs real" for m in METRICS]

    def ci(r: dict, m: str) -> str:
        return f"{r[m]:.3f} [{r[m + '_low']:.3f}, {r[m + '_high']:.3f}]" if m in r else ""

    table = html_table(cols, [[r["arm"], r["fraction"], r["n_real"], r["n_synthetic"], *(ci(r, m) for m in METRICS),
                               *(ci(r, f"delta_{m}") for m in METRICS)] for r in summary])
    checks = "; ".join(f"{s.name}: generator training data {s.generator_check}" for s in result.synthetic)
    budget = ("features extracted once per image (cached); classical arms train on "
              f"{cfg.train.views} augmented views per image" if probe else
              f"{cfg.train.images} training images seen per run (the same for every arm), last weights kept"
              + (", predictions averaged over 8 rotations / mirror images" if cfg.train.tta else "")
              if cfg.train.select == "last" else
              f"at most {cfg.train.images} training images seen per run (the same cap for every arm)")
    selection = ("C" if probe else "the probe-initialised head's C" if cfg.train.select == "last" and
                 cfg.train.probe_init else "the kept checkpoint" if cfg.train.select != "last" else "nothing")
    sections = [
        ("Balanced accuracy vs real data", "Test balanced accuracy (mean over seeds) against the fraction of the real "
         "training data each arm had; bands are 95% bootstrap intervals (test images and seeds resampled).", lead),
        ("Setup", f"{len(result.labels)} classes ({', '.join(result.labels)}); {len(result.test.y)} real test images; "
         f"{cfg.seeds} seed(s) per arm and fraction; classifier {detector}, {budget}; chosen on the real val split: "
         f"{selection}. {checks}", None),
        ("Metrics", "Seed-averaged test metrics; bars and brackets are 95% percentile-bootstrap intervals over test "
         "images and seeds. Δ = the arm minus real-only on the same resamples (paired): an interval excluding 0 "
         "is a difference this study can see.", figure),
        ("Summary", "", table),
        ("Per class", "Recall per class (mean over seeds) with Wilson 95% intervals over that class's test images.",
         html_table(list(per_class[0]), [list(r.values()) for r in per_class])),
    ]
    if dark_light:
        sections.append(("Subgroup check: dark vs light skin",
                         f"Accuracy (share of seeds right, averaged over images) on test images with ITA < {DARK_ITA:g}° "
                         "(brown/dark) and >= that (light), Wilson 95% intervals; n_test = images in the group.",
                         html_table(list(dark_light[0]), [list(r.values()) for r in dark_light])))
    else:  # say why the check people ask for is missing, instead of leaving it out silently
        sections.append(("Subgroup check: dark vs light skin",
                         "Not computed: the test rows carry no ITA. Run `skingen analyze DATA` on the data folder "
                         "first; it writes the ita and ita_category columns this check reads.", ""))
    if per_tone:
        sections.append(("Per skin tone", "Accuracy per ITA category of the test images (Wilson 95%).",
                         html_table(list(per_tone[0]), [list(r.values()) for r in per_tone])))
    write_html(out / "summary.html", "skingen downstream study", sections)


def console_rows(out: str | Path) -> tuple[list[str], list[list[str]]]:
    """The summary as text rows for the CLI's table (from ``summary.csv``; the other deltas are in the file)."""
    _, rows = read_csv(Path(out) / "summary.csv")
    header = ["arm", "fraction", "n real", "n synth"] + [_NAMES[m] for m in METRICS] + ["Δ balanced accuracy vs real"]
    text = []
    for r in rows:
        cells = [r["arm"], r["fraction"], r["n_real"], r["n_synthetic"]]
        for m in list(METRICS) + ["delta_balanced_accuracy"]:
            cells.append(f"{float(r[m]):.3f} [{float(r[m + '_low']):.3f}, {float(r[m + '_high']):.3f}]" if r.get(m) else "")
        text.append(cells)
    return header, text
