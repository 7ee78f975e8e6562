"""avse.bin.benchmark: trained models, weight layouts and dtypes as rows (timings are printed, not asserted)."""
import pytest

from avse.bin.benchmark import main
from testutils import tiny_model


def test_benchmark_times_a_trained_model_in_both_layouts(tmp_path, capsys, one_thread):
    model = tiny_model(str(tmp_path / "exp" / "model.pt"))
    conf = tmp_path / "enhance_fast.yaml"
    conf.write_text("method: udiffse_plus\nmethod_conf: {n_steps: 2, n_corrector: 0, n_samples: 2}\n")
    assert main(["--presets", "--models", model, "--devices", "cpu", "--methods", "--configs", str(conf),
                 "--layouts", "nhwc", "nchw", "--dtypes", "fp32", "bf16", "--seconds", "0.5"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("exp ")]
    assert [(r[2], r[4], r[5]) for r in rows] == [("enhance_fast", lay, dt) for lay in ("nhwc", "nchw")
                                                    for dt in ("fp32", "bf16")]
    for r in rows:
        nfe, rtf = int(r[6]), float(r[8])
        assert nfe == 2 and 0 < rtf < float("inf") and r[-1] == "measured"


def test_benchmark_refuses_a_vae(tmp_path):
    model = tiny_model(str(tmp_path / "vae" / "model.pt"), vae=True)
    with pytest.raises(SystemExit, match="not a diffusion score model"):
        main(["--presets", "--models", model, "--devices", "cpu", "--methods", "udiffse_plus", "--seconds", "0.5"])
