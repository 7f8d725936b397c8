"""Exports one batch of metrics to Vigil with the real OpenTelemetry Python SDK.

Usage: otlp_export.py ENDPOINT INSTANCE_ID
  ENDPOINT     the full metrics URL, e.g. http://127.0.0.1:9090/api/v1/otlp/v1/metrics
  INSTANCE_ID  the resource's service.instance.id (becomes the `instance` label)

Compression follows the SDK's own OTEL_EXPORTER_OTLP_COMPRESSION variable. Records a
counter, an up-down counter, a gauge and a histogram with known values, flushes once
and exits non-zero unless the exporter reported success. Exit code 3 means the SDK
is not installed (the Rust test then skips, or fails under CI).
"""

import sys

try:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
except ImportError as e:  # the test turns this into a skip, or a failure in CI
    print(f"OpenTelemetry SDK missing: {e}", file=sys.stderr)
    sys.exit(3)

# Long enough that only the explicit flush exports.
EXPORT_INTERVAL_MS = 3_600_000


class RecordingExporter(OTLPMetricExporter):
    """The OTLP/HTTP exporter, remembering whether every export succeeded."""

    results = []

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        RecordingExporter.results.append(result)
        return result


def main():
    endpoint, instance = sys.argv[1], sys.argv[2]
    resource = Resource.create(
        {
            "service.name": "otel-demo",
            "service.namespace": "vigil-test",
            "service.instance.id": instance,
            "deployment.environment": "test",
        }
    )
    exporter = RecordingExporter(endpoint=endpoint)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=EXPORT_INTERVAL_MS)
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("vigil.e2e", "1.0")

    requests = meter.create_counter("demo.requests", unit="{request}", description="Requests handled.")
    requests.add(5, {"http.method": "GET"})
    requests.add(2, {"http.method": "POST"})

    queue = meter.create_up_down_counter("demo.queue.size", unit="{item}", description="Items queued.")
    queue.add(10)
    queue.add(-3)

    temperature = meter.create_gauge("demo.temperature", unit="Cel", description="Room temperature.")
    temperature.set(21.5)

    latency = meter.create_histogram(
        "demo.latency", unit="s", description="Request latency.", explicit_bucket_boundaries_advisory=[0.1, 1.0, 5.0]
    )
    # Recorded inside a sampled span, so the SDK's default trace-based exemplar filter
    # attaches exemplars carrying the span's trace id.
    tracer = TracerProvider(resource=resource).get_tracer("vigil.e2e")
    with tracer.start_as_current_span("request"):
        for v in (0.05, 0.2, 3.0, 7.0):
            latency.record(v)

    provider.force_flush()
    provider.shutdown()
    ok = RecordingExporter.results and all(r == MetricExportResult.SUCCESS for r in RecordingExporter.results)
    if not ok:
        print(f"export failed: {RecordingExporter.results}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
