from lab.pytest_plugin import lab_host  # noqa: F401  (session fixture, shared with other suites)
