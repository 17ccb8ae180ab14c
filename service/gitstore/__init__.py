"""Device configurations (and other job output) kept in git repositories.

``store`` writes and reads a repository's files under its lock; ``backups`` reads which
devices were backed up, their versions and diffs, for the API and the console.
"""
