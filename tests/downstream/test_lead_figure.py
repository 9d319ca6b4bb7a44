from skingen.downstream.report import ONE_PANEL_ARMS, lead_figure
from skingen.downstream.study import StudyConfig, arms_for


def _summary(arms):
    return [{"arm": a.name, "fraction": f, "balanced_accuracy": 0.8, "balanced_accuracy_low": 0.7,
             "balanced_accuracy_high": 0.9} for a in arms for f in (0.25, 1.0)]


def test_many_arms_get_one_panel_per_synthetic_set():
    few = arms_for(StudyConfig(ratios=(1,), combined=False), ["a", "b"])  # real, classical, a@1, b@1
    many = arms_for(StudyConfig(ratios=(0.5, 1, 3), combined=False), ["a", "b", "c"])  # 11 arms
    assert len(few) <= ONE_PANEL_ARMS < len(many)
    one = lead_figure(_summary(few), "t", few)
    panels = lead_figure(_summary(many), "t", many)
    assert one.shape[1] == 750  # 7.5 in at 100 dpi: one panel
    assert panels.shape[1] == 3 * 420  # three sets side by side, 4.2 in each
