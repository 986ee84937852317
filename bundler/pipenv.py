"""The environment every build-side pip run gets: this machine's pip and uv configuration left out.

A developer's ``pip.conf`` (find-links, mirrors, constraints) or ``PIP_*``/``UV_*`` variables must
not change what a build fetches or produces; the sources are given explicitly on each command line.
"""

from __future__ import annotations

import os


def pip_env(**extra: str) -> dict[str, str]:
    """``os.environ`` without ``PIP_*``/``UV_*``, with pip's config file disabled, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    env.update(extra)
    return env
