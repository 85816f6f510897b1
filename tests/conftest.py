"""Suite-wide plugins: the skip guard (strict in CI)."""

pytest_plugins = ["tests.skip_guard"]
