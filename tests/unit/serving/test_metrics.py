"""Custom metrics counted in each process and merged when scraped (prometheus_client's multiprocess mode)."""
import subprocess
import sys
import textwrap


def test_counters_of_several_processes_are_summed_with_seldons_labels(tmp_path):
    # each process must set the folder before prometheus_client is imported, as loanxai-microservice does
    script = textwrap.dedent(f"""
        import os, sys
        os.environ["prometheus_multiproc_dir"] = {str(tmp_path)!r}
        from loanxai.serving.server.metrics import ProcessMetrics
        metrics = ProcessMetrics({str(tmp_path)!r})
        if sys.argv[1] == "count":
            metrics.update([{{"type": "COUNTER", "key": "loan_things", "value": 2, "tags": {{"kind": "a"}}}},
                            {{"type": "GAUGE", "key": "loan_level", "value": 7}},
                            {{"type": "TIMER", "key": "loan_wait", "value": 250}}], "predict")
        else:
            print(metrics.generate_metrics()[0])
    """)
    for _ in range(2):  # two workers, each its own process
        subprocess.run([sys.executable, "-c", script, "count"], check=True)
    text = subprocess.run([sys.executable, "-c", script, "scrape"], check=True, capture_output=True, text=True).stdout
    [total] = [line for line in text.splitlines() if line.startswith("loan_things_total{")]
    assert total.endswith(" 4.0") and 'kind="a"' in total and 'method="predict"' in total
    assert 'model_name="' in total and 'deployment_name="' in total  # Seldon's deployment labels
    assert text.count("loan_level{") == 2 and "worker_id=" in text  # a gauge per process
    buckets = [line for line in text.splitlines() if line.startswith("loan_wait_bucket{")]
    assert 'le="0.001"' in buckets[0] and buckets[0].endswith(" 0.0")  # Seldon's buckets, from 1 ms
    assert [line for line in text.splitlines() if line.startswith("loan_wait_sum{")][0].endswith(" 0.5")  # seconds
