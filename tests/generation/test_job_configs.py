"""`sample` and `inpaint` options as configs: built by load_config like every command's, checked before any model loads."""

import pytest

from skingen.config import load_config, to_dict
from skingen.data.layouts import LayoutParams
from skingen.errors import SkingenError
from skingen.generation.inpaint_folder import InpaintConfig
from skingen.generation.sample_folder import SampleConfig
from skingen.generation.backends.sd import SDOptions


def test_sample_config_from_typed_options_rebuilds_nested_layouts():
    layouts = LayoutParams(ita=(-60.0, -30.0), spread=1.0)
    cfg = load_config(SampleConfig, base={"batch": 4, "label": "1", "layouts": to_dict(layouts), "guidance": 2.0})
    assert cfg.layouts == layouts and cfg.label == "1" and cfg.batch == 4  # typed: the label "1" stays a string
    assert cfg.model_options() == {"guidance": 2.0}  # only what was given reaches Model.sample
    assert SampleConfig(strength=0.3, solver_steps=5).model_options() == {"solver_steps": 5, "strength": 0.3}


def test_inpaint_config_from_a_yaml_file(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("params: {steps: 3, shape: blob}\nruns: 2\nsd: {prompts: {measles: red spots}, guidance: 5}\n")
    cfg = load_config(InpaintConfig, path)
    assert cfg.params == {"steps": 3, "shape": "blob"} and cfg.runs == 2
    assert cfg.sd == SDOptions(prompts={"measles": "red spots"}, guidance=5.0)


def test_inpaint_config_refuses_bad_values_before_any_model_loads():
    with pytest.raises(SkingenError, match="unknown config key 'params.steps_per_run'"):
        InpaintConfig(params={"steps_per_run": 3})
    with pytest.raises(SkingenError, match="region shape"):
        InpaintConfig(params={"shape": "circle"})
    with pytest.raises(SkingenError, match="--runs, --batch and --n must be at least 1"):
        InpaintConfig(runs=0)
