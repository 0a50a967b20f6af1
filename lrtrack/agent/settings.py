"""`AgentSettings`: how an agent behaves, declared once (``lrtrack agent``'s flags come from it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AgentSettings(BaseModel):
    """How an agent behaves; defaults suit runs of seconds to hours. The single declaration
    of these settings: ``lrtrack agent``'s flags are derived from the fields
    (`lrtrack.cli.config_options`), and a supervisor passes them on to its workers as flags."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int | None = Field(None, ge=1, description="Stop after this many runs (per worker).")
    heartbeat_seconds: float = Field(15.0, ge=0.05, description="Heartbeat interval of a running run.")
    grace_seconds: float = Field(120.0, ge=0.1, description="A run silent this long is requeued.")
    poll_seconds: float = Field(2.0, ge=0.01, description="Idle wait while other agents' runs are in flight.")
    offline: bool = Field(False, description="Force offline W&B runs.")
    verbose: bool = Field(False, description="Show W&B's own console output (banners, run summaries).")
