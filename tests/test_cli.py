"""The command line, run as a real subprocess (``python -m onnx2tflite``) on tiny ONNX graphs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from ai_edge_litert.interpreter import Interpreter
from onnx import TensorProto, helper, numpy_helper

from op_harness import graph_model, random_feeds
from onnx2tflite.converter.tflite_io import bytes_to_graph
from onnx2tflite.validate.compare import ort_session
from onnx2tflite.validate.metrics import compare_arrays

REPO = Path(__file__).resolve().parents[1]
NHWC = (0, 2, 3, 1)


def run_cli(*args, cwd=None, env_extra=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "onnx2tflite", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def two_in_two_out() -> onnx.ModelProto:
    """sum = x + skip:0 + b; act/out = Relu(sum). Names with ':' '/' '.' as exported models have."""
    b = np.linspace(-1, 1, 3 * 8).reshape(3, 1, 8).astype(np.float32)
    spec = ([1, 3, 8, 8], np.float32)
    return graph_model([helper.make_node("Add", ["x", "skip:0"], ["t.1"]),
                        helper.make_node("Add", ["t.1", "b"], ["sum"]),
                        helper.make_node("Relu", ["sum"], ["act/out"])],
                       {"x": spec, "skip:0": spec}, {"sum": spec, "act/out": spec}, {"b": b})


@pytest.fixture
def model_file(tmp_path) -> Path:
    path = tmp_path / "net.onnx"
    onnx.save(two_in_two_out(), path)
    return path


def run_signature(tflite: Path, model: onnx.ModelProto, to_tflite=NHWC):
    """Run the .tflite through LiteRT's signature runner by ONNX names; check it against onnxruntime.
    ``to_tflite``: the permutation taking ONNX layout to the TFLite boundary layout (None: same)."""
    runner = Interpreter(model_path=str(tflite)).get_signature_runner()
    onnx_in = [i.name for i in model.graph.input]
    onnx_out = [o.name for o in model.graph.output]
    assert sorted(runner.get_input_details()) == sorted(onnx_in)
    assert sorted(runner.get_output_details()) == sorted(onnx_out)
    feeds = random_feeds(model, seed=3)
    perm = to_tflite or tuple(range(4))
    got = runner(**{k: np.ascontiguousarray(v.transpose(perm)) for k, v in feeds.items()})
    ref = dict(zip(onnx_out, ort_session(model).run(onnx_out, feeds)))
    for name in onnx_out:
        assert got[name].shape == tuple(ref[name].shape[p] for p in perm)
        m = compare_arrays(name, ref[name], got[name].transpose(np.argsort(perm)), rtol=1e-5)
        assert m.ok, f"{name}: {m.problem}"


def test_default_writes_next_to_input_validates_and_runs(model_file):
    r = run_cli(model_file)
    assert r.returncode == 0, r.stderr
    out = model_file.with_suffix(".tflite")
    assert out.is_file()
    for name in ("sum", "act/out"):  # one PASS row per ONNX output
        assert any(line.split()[:1] == [name] and "PASS" in line for line in r.stdout.splitlines()), r.stdout
    ops = [n.op_type for n in bytes_to_graph(out.read_bytes())]
    summary = {line.split()[0]: line.split()[1].rstrip(":") for line in r.stdout.splitlines()[1:3]}
    assert summary == {"ops": str(len(ops)), "TRANSPOSE": str(ops.count("TRANSPOSE"))}, r.stdout
    run_signature(out, two_in_two_out())


def test_keep_nchw_io_keeps_onnx_shapes(model_file):
    out = model_file.with_name("nchw.tflite")
    r = run_cli(model_file, "-o", out, "--keep-nchw-io")
    assert r.returncode == 0, r.stderr
    run_signature(out, two_in_two_out(), to_tflite=None)


def test_output_option_and_no_validate(model_file, tmp_path):
    out = tmp_path / "sub" / "dir" / "custom.tflite"
    r = run_cli(model_file, "-o", out, "--no-validate")
    assert r.returncode == 0, r.stderr
    assert out.is_file() and not model_file.with_suffix(".tflite").exists()
    assert "PASS" not in r.stdout and "Validation" not in r.stdout
    assert str(out) in r.stdout
    run_signature(out, two_in_two_out())


def test_report_json(model_file, tmp_path):
    out, rep = tmp_path / "m.tflite", tmp_path / "report.json"
    r = run_cli(model_file, "-o", out, "--report-json", rep, "--seed", "7")
    assert r.returncode == 0, r.stderr
    data = json.loads(rep.read_text())
    assert data["ok"] is True and data["output"] == str(out) and data["input"] == str(model_file)
    s = data["summary"]
    assert s["size_bytes"] == out.stat().st_size
    assert s["op_total"] == sum(s["op_counts"].values()) > 0
    assert s["transpose_count"] == s["op_counts"].get("TRANSPOSE", 0)
    assert s["seconds"] > 0
    v = data["validation"]
    assert v["seed"] == 7 and v["ok"] is True
    assert [o["name"] for o in v["outputs"]] == ["sum", "act/out"]
    for o in v["outputs"]:
        assert o["ok"] and float(o["max_abs"]) <= 1e-4 * max(1.0, float(o["max_ref"]))
        assert float(o["max_ref"]) > 0
    assert set(data["io_layout"]["inputs"]) == {"x", "skip:0"}


def test_report_json_without_validation(model_file, tmp_path):
    rep = tmp_path / "r.json"
    r = run_cli(model_file, "--no-validate", "--report-json", rep)
    assert r.returncode == 0, r.stderr
    data = json.loads(rep.read_text())
    assert data["validation"] is None and data["ok"] is True


def test_quiet_prints_nothing(model_file):
    r = run_cli(model_file, "-q")
    assert r.returncode == 0
    assert r.stdout == "" and r.stderr == ""
    assert model_file.with_suffix(".tflite").is_file()


def test_main_entry_point_in_process(model_file, tmp_path, capsys):
    from onnx2tflite.cli import main

    out = tmp_path / "inproc.tflite"
    assert main([str(model_file), "-o", str(out), "--no-validate"]) == 0
    assert out.is_file() and str(out) in capsys.readouterr().out


def _cancellation_model() -> onnx.ModelProto:
    """y = (x + 1e8) - 1e8 in float64: exact in onnxruntime, but float32 (all TFLite computes) rounds
    x + 1e8 to a multiple of 8, so the converted model must fail validation."""
    k = np.full([1, 4], 1e8)
    g = helper.make_graph([helper.make_node("Add", ["x", "k"], ["t"]), helper.make_node("Add", ["t", "nk"], ["y"])],
                          "cancel", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [2, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [2, 4])],
                          [numpy_helper.from_array(k, "k"), numpy_helper.from_array(-k, "nk")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_validation_failure_exits_1_and_still_writes(tmp_path):
    src, out, rep = tmp_path / "cancel.onnx", tmp_path / "cancel.tflite", tmp_path / "r.json"
    onnx.save(_cancellation_model(), src)
    r = run_cli(src, "--report-json", rep)
    assert r.returncode == 1, r.stderr
    assert out.is_file()
    assert "validation failed" in r.stderr and "y:" in r.stderr and "FAIL" in r.stdout
    data = json.loads(rep.read_text())
    assert data["ok"] is False and [o["ok"] for o in data["validation"]["outputs"]] == [False]
