"""Device configurations (and other job output) kept in git repositories."""
