"""Support shared by the test suite AND the benchmarks (bench/): a throwaway
PostgreSQL cluster (``pgcluster``) and a fake of Twilio's Messages API
(``fake_twilio``).

The contract that makes sharing safe: modules here import nothing from the rest
of ``tests/`` (no fixtures, no helpers, no pytest), so bench/ depends only on this
package, never on test internals. Why here rather than in bench/: these are test
doubles and test infrastructure, used by far more tests than benchmarks, and
``make test`` must not depend on the optional benchmarks (docs/decisions.md).
"""
