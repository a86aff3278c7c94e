"""Exception types the public API raises; each message is meant for a person, not a developer."""


class StarGANAppError(Exception):
    """Base class: anything the app can explain to its user."""


class ImageError(StarGANAppError):
    """The input could not be read as an image (corrupt, not an image, unsupported)."""


class ImageTooLargeError(ImageError):
    """The image has more pixels than the app will decode."""


class NoFaceError(StarGANAppError):
    """No face (or no face with the requested index) was found in the image."""


class LabelError(StarGANAppError):
    """An attribute name or strength the model cannot use."""


class WeightsError(StarGANAppError):
    """A weights file is missing, unreadable, or of the wrong kind."""
