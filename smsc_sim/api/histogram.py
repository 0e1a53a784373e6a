"""The latency histograms the control API keeps, in Prometheus' default buckets."""

from __future__ import annotations

from bisect import bisect_left

#: upper bounds (seconds) of the response latency histogram buckets
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, float("inf"))


class Histogram:
    """Per-bucket counts of one labelled latency histogram (made cumulative at scrape)."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * len(LATENCY_BUCKETS)
        self.total = 0.0

    @property
    def count(self) -> int:
        """Latencies counted (the buckets' sum: one addition less per latency)."""
        return sum(self.counts)

    def observe(self, value: float) -> None:
        """Count one latency."""
        self.counts[bisect_left(LATENCY_BUCKETS, value)] += 1
        self.total += value

    def with_first(self, more: int) -> Histogram:
        """A copy with ``more`` latencies added to the first bucket, their sum taken as nothing."""
        copy = Histogram()
        copy.counts[:] = self.counts
        copy.counts[0] += more
        copy.total = self.total
        return copy

    def buckets(self) -> list[tuple[str, float]]:
        """``(le, cumulative count)`` of every bucket, as Prometheus wants them."""
        running = 0
        result = []
        for bound, n in zip(LATENCY_BUCKETS, self.counts):
            running += n
            result.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
        return result
