"""Imports every module that defines tables, so ``Base.metadata`` is complete."""

from __future__ import annotations

from service.db import device_models, models, nifi_models, notify_models, security_models

MODEL_MODULES = (models, security_models, nifi_models, device_models, notify_models)
