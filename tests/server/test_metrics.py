"""The Prometheus text rendering: cumulative buckets, sum and count, escaped label values."""

from __future__ import annotations

from bertkit.server.metrics import Counter, Gauge, Histogram, Registry


def test_histogram_buckets_are_cumulative_with_sum_and_count():
    registry = Registry()
    sizes = registry.add(Histogram("batch_size", "items per batch", (1, 4, 16)))
    for value in (1, 3, 3, 20):
        sizes.observe(value, (("model", "m"),))
    lines = registry.render().splitlines()
    assert lines[:2] == ["# HELP batch_size items per batch", "# TYPE batch_size histogram"]
    assert lines[2:] == ['batch_size_bucket{model="m",le="1"} 1',
                         'batch_size_bucket{model="m",le="4"} 3',
                         'batch_size_bucket{model="m",le="16"} 3',
                         'batch_size_bucket{model="m",le="+Inf"} 4',
                         'batch_size_sum{model="m"} 27', 'batch_size_count{model="m"} 4']


def test_counters_and_gauges_escape_label_values():
    registry = Registry()
    requests = registry.add(Counter("requests_total", "requests"))
    requests.inc((("endpoint", 'a"b\\c\nd'),))
    requests.inc((("endpoint", 'a"b\\c\nd'),), 2)
    registry.add(Gauge("queue", "queued", lambda: {(): 0.5}))
    text = registry.render()
    assert 'requests_total{endpoint="a\\"b\\\\c\\nd"} 3\n' in text
    assert "queue 0.5\n" in text
