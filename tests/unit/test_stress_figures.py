"""The stress driver's figures: percentiles, errors by code, reading /metrics text."""

from __future__ import annotations

from simulator.stress.figures import Errors, Latencies, parse_metrics, percentile, sample
from simulator.stress.rest import Answer


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([], 0.5) == 0.0
    latencies = Latencies([0.2, 0.1, 0.3])
    assert latencies.summary() == {"count": 3, "p50_ms": 200.0, "p99_ms": 300.0, "max_ms": 300.0}


def test_errors_are_counted_by_the_api_code() -> None:
    errors = Errors()
    assert not errors.add_answer(Answer(200, {"inventory": {}}))
    error = {"error": {"code": "HOST.1002", "description": "no host has room"}}
    assert errors.add_answer(Answer(503, error))
    assert errors.add_answer(Answer(503, error))
    assert errors.add_answer(Answer(502, "<html>bad gateway</html>"))
    errors.add_exception(TimeoutError("slow"))
    assert errors.by_code == {"HOST.1002": 2, "HTTP.502": 1, "CLIENT.TimeoutError": 1}
    assert errors.first["HOST.1002"] == "no host has room"
    assert errors.total == 4


def test_metrics_text_is_read_by_name_and_labels() -> None:
    text = (
        "# TYPE zstack_api_requests_total counter\n"
        'zstack_api_requests_total{api="CreateVmInstance",result="success"} 300\n'
        'zstack_api_requests_total{api="CreateVmInstance",result="VM.1001"} 2\n'
        "# TYPE zstack_node_ready gauge\n"
        "zstack_node_ready 1\n"
    )
    samples = parse_metrics(text)
    total = "zstack_api_requests_total"
    assert sample(samples, total, api="CreateVmInstance", result="success") == 300
    assert sample(samples, total, api="CreateVmInstance", result="VM.1001") == 2
    assert sample(samples, total, api="CreateZone", result="success") == 0
    assert sample(samples, "zstack_node_ready") == 1
