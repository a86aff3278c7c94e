"""Shared pytest configuration."""


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "shared_data: needs the data sets under ../shared/data (skipped when absent)",
    )
