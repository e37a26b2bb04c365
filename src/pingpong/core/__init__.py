"""The framework-free throttling core: rates, algorithms, policies, storage."""
