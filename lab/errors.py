"""The lab's one exception type, shared by the image builder and the controller."""


class LabError(RuntimeError):
    """A lab operation failed; the message says why and where to look."""
