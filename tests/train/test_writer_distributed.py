import jax
import pytest

from jaxfp.train import MetricWriter, maybe_initialize_distributed, read_metrics


def test_writer_jsonl_tensorboard_and_truncation(tmp_path):
    writer = MetricWriter(str(tmp_path))
    for step in range(1, 6):
        writer.write_scalars(step, {"loss": 1.0 / step, "bad": float("nan")})
    writer.flush()
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "loss": 0.1')  # a line cut by a kill
    writer.truncate_after(3)
    writer.write_scalars(4, {"loss": 9.0})
    writer.close()
    rows = read_metrics(str(tmp_path))
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and rows[-1]["loss"] == 9.0
    assert rows[0]["bad"] == "nan"
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_distributed_only_with_the_environment(monkeypatch):
    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
    for var in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        monkeypatch.delenv(var, raising=False)
    assert maybe_initialize_distributed() is False and not calls
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "10.0.0.1:1234")
    with pytest.raises(RuntimeError, match="missing"):
        maybe_initialize_distributed()
    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
    monkeypatch.setenv("JAX_PROCESS_ID", "1")
    assert maybe_initialize_distributed() is True
    assert calls == [{"coordinator_address": "10.0.0.1:1234", "num_processes": 2, "process_id": 1}]
