"""Imports every module that defines tables, so ``Base.metadata`` is complete."""

from __future__ import annotations

from service.db import models, security_models

MODEL_MODULES = (models, security_models)
