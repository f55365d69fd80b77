"""Development support that is not the product: the `make demo` script and a throw-away SeaweedFS S3 server.

Used by `make demo`, the tests and the benchmarks, from a checkout.  Nothing
under ``preservation`` or ``storage_adapters`` imports it (an import-linter
contract in pyproject.toml checks that), and it is not in the wheel.
"""
