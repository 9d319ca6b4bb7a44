"""RunFolder: the one reader of a training run's config.yaml."""

import pytest

from skingen.errors import SkingenError
from skingen.run_folder import RunFolder


def write(tmp_path, text):
    (tmp_path / "config.yaml").write_text(text)
    return RunFolder(tmp_path)


def test_config_and_training_data(tmp_path):
    run = write(tmp_path, "family: dcgan\ndata: /d\nmodel: {size: 32}\ntrain: {split: val}\n")
    assert run.config()["family"] == "dcgan" and run.training_data() == ("/d", "val")
    assert write(tmp_path, "family: dcgan\ndata: /d\n").training_data() == ("/d", "train")  # the default split
    assert write(tmp_path, "family: dcgan\ndata: /d\ntrain: {split: ''}\n").training_data() == ("/d", None)  # all rows
    assert RunFolder.of_checkpoint(tmp_path / "checkpoints" / "step-000010").path == tmp_path


def test_strict_reading_is_a_one_line_error_and_lenient_reading_is_empty(tmp_path):
    with pytest.raises(SkingenError, match="is not a run folder"):
        RunFolder(tmp_path).config()
    assert RunFolder(tmp_path).settings() == {} and RunFolder(tmp_path).training_data() == (None, "train")
    with pytest.raises(SkingenError, match="not a run config"):
        write(tmp_path, "family: dcgan\n").config()
    with pytest.raises(SkingenError, match="not valid YAML"):
        write(tmp_path, "family: [\n").config()
    assert write(tmp_path, "").settings() == {}


def test_resume_allows_only_a_new_length(tmp_path):
    run = write(tmp_path, "family: dcgan\ndata: /d\n")
    assert run.resume_images("dcgan", [], None) is None
    assert run.resume_images("dcgan", ["train.images=500"], None) == 500
    for overrides, config, init, why in ((["model.size=64"], None, None, "only --set train.images"),
                                         ([], "x.yaml", None, "drop --config"), ([], None, "other", "drop --config"),
                                         ([], None, None, "is a 'dcgan' run, not 'cvae'")):
        with pytest.raises(SkingenError, match=why):
            run.resume_images("cvae" if "cvae" in why else "dcgan", overrides, config, init)
