"""bertkit's version, in a module of its own: everything may import it (a provenance manifest,
the server's ``/health``, ``bertkit --version``) without importing the package's public face."""

__version__ = "0.1.0"
