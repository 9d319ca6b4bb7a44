from tests.rating.conftest import answer_as, correct_rule
from skingen.rating.report import build_report, write_report, console_rows
def test_smoke(make_study, tmp_path):
    s = make_study()
    answer_as(s, correct_rule)
    answer_as(s, lambda q, t: ("real", 3) if q["mode"] == "single" else ("left", None) if q["mode"] == "pair" else ("3", None))
    answer_as(s, lambda q, t: None if q["position"] > 5 else correct_rule(q, t))
    r = build_report(s)
    for row in r.summary: print(row)
    for row in r.agreement: print(row)
    for row in r.per_rater: print(row)
    for row in r.per_tone[:5]: print(row)
    for row in r.mistaken[:3]: print(row)
    p = write_report(r, tmp_path / "rep")
    print(sorted(x.name for x in p.parent.iterdir()))
    print(console_rows(r))
    import shutil; shutil.copytree(p.parent, "/tmp/rep_smoke", dirs_exist_ok=True)
