"""Tests that run a lab across network namespaces, one per PC."""
