from lab.pytest_plugin import cluster_host, lab_host  # noqa: F401  (session fixtures, shared with other suites)
