"""Which operations endpoints (:mod:`.ops`) are served: apart, so that reading the
settings loads no route or document code."""

from __future__ import annotations

import attrs


@attrs.frozen
class OpsConfig:
    healthz: bool = True
    readyz: bool = True
    metrics: bool = False
