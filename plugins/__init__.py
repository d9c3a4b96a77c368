"""ganzoo's built-in plugins, installed as ``ganzoo_plugins``; each folder registers itself through
the ``ganzoo`` entry-point group, exactly as a third-party package would."""
