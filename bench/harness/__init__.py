"""What every benchmark scenario shares: the emulator, the contenders, processes, measurements.

* :mod:`bench.harness.processes`: the emulator, moto's SQS and ``orchestrator run`` in their
  own processes, and the environment of a child process;
* :mod:`bench.harness.contenders`: ``ours`` and botocore's retry modes making the mutating
  calls, and those calls' parameters;
* :mod:`bench.harness.measure`: per-call times, percentiles, Jain's index, rates, CPU and RSS;
* :mod:`bench.harness.sampling`: the emulator's counters, totals and over time.
"""
