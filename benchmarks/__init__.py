"""Performance benchmarks of tdpcr: model throughput, data pipeline, scene inference, DDP.

Run them all with one command (``make bench``)::

    python -m benchmarks.run_all [--tiny] [--device cpu|cuda|auto] [--out reports/]

which writes ``reports/benchmarks.md`` and ``reports/benchmarks.json``. Every measurement that
needs its own peak-memory figure runs in a child process (``python -m benchmarks.<module>
--worker ...``), so a figure is that run's own and not the high-water mark of an earlier one.
See ``docs/performance.md`` § Performance for what is measured and how.
"""
