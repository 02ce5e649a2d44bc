"""What ``directory`` tells Prometheus (``GET /metrics``): its syncs, read from the database
at each scrape (the worker's beat runs them), so every process answers the same."""

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from directory.selectors import directory_status


class DirectoryCollector:
    """When the directory was last read in full, and whether the latest sync failed: alert
    when a sync keeps failing, since leavers then keep their signing rights."""

    def collect(self) -> Iterator[Metric]:
        status = directory_status()
        if not status.configured:
            return
        failing = GaugeMetricFamily(
            "gatehouse_directory_sync_failing",
            "1 when the latest directory sync could not read the directory or refused what "
            "it read (nothing was changed); 0 otherwise.",
        )
        failing.add_metric([], 1.0 if status.failing else 0.0)
        yield failing
        last = GaugeMetricFamily(
            "gatehouse_directory_last_sync_timestamp_seconds",
            "When the latest sync that read the directory in full and applied it finished "
            "(Unix time); absent before the first.",
        )
        if status.last_applied is not None:
            last.add_metric([], status.last_applied.finished_at.timestamp())
        yield last
