"""ORM models of notifications and maintenance: channels, rules, the outbox, events,
deliveries with their attempts, alert states per subject, and maintenance windows."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.db.models import Base, sql_values


class ChannelType(enum.StrEnum):
    WEBHOOK = "webhook"
    SLACK = "slack"
    EMAIL = "email"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


class NotificationChannel(Base):
    """Where messages go; a webhook's signing secret is one ciphertext under ``key_id``."""

    __tablename__ = "notification_channels"
    __table_args__ = (
        CheckConstraint(f"type IN ({sql_values(ChannelType)})", name="type"),
        Index(
            "uq_notification_channels_global_name",
            "name",
            unique=True,
            postgresql_where=text("is_global"),
        ),
        Index(
            "uq_notification_channels_owner_name",
            "owner",
            "name",
            unique=True,
            postgresql_where=text("NOT is_global"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16))
    is_global: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    owner: Mapped[str | None] = mapped_column(String(255), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    key_id: Mapped[str | None] = mapped_column(String(64))
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class NotificationRule(Base):
    """Which events, for which templates/schedules/job types (none: all), to which channels."""

    __tablename__ = "notification_rules"
    __table_args__ = (
        Index(
            "uq_notification_rules_global_name",
            "name",
            unique=True,
            postgresql_where=text("is_global"),
        ),
        Index(
            "uq_notification_rules_owner_name",
            "owner",
            "name",
            unique=True,
            postgresql_where=text("NOT is_global"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    events: Mapped[list[Any]] = mapped_column()
    channel_ids: Mapped[list[Any]] = mapped_column()
    job_types: Mapped[list[Any] | None] = mapped_column()
    template_ids: Mapped[list[Any] | None] = mapped_column()
    schedule_ids: Mapped[list[Any] | None] = mapped_column()
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    is_global: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    owner: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class NotificationOutbox(Base):
    """A run ended in a way a rule may care about; written by the statement that ended it."""

    __tablename__ = "notification_outbox"
    __table_args__ = (
        Index("ix_notification_outbox_unprocessed", "id", postgresql_where=text("NOT processed")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    processed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class NotificationEvent(Base):
    """One verdict worth telling someone: what, where, since when, with a link."""

    __tablename__ = "notification_events"
    __table_args__ = (
        UniqueConstraint("event", "dedup_key", name="uq_notification_events_dedup"),
        Index("ix_notification_events_unrouted", "id", postgresql_where=text("NOT routed")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    # The subject and state change this event is about: one event per change, ever.
    dedup_key: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    run_id: Mapped[int | None] = mapped_column(BigInteger)
    schedule_id: Mapped[int | None] = mapped_column(Integer)
    template_id: Mapped[int | None] = mapped_column(Integer)
    job_type: Mapped[str | None] = mapped_column(String(64))
    is_global: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    owner: Mapped[str | None] = mapped_column(String(255))
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    since: Mapped[datetime | None] = mapped_column()
    routed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    occurred_at: Mapped[datetime] = mapped_column(server_default=func.now())


class NotificationDelivery(Base):
    """One event for one rule to one channel; sent in order per rule and channel."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "rule_id", "channel_id", name="uq_notification_deliveries"),
        CheckConstraint(f"status IN ({sql_values(DeliveryStatus)})", name="status"),
        Index(
            "ix_notification_deliveries_open",
            "rule_id",
            "channel_id",
            "id",
            postgresql_where=text("status IN ('pending', 'sending')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("notification_events.id", ondelete="CASCADE"), index=True
    )
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("notification_rules.id", ondelete="SET NULL")
    )
    channel_id: Mapped[int | None] = mapped_column(
        ForeignKey("notification_channels.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    lease_until: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column()


class NotificationAttempt(Base):
    """One try of a delivery: when, what the receiver answered, or why it failed."""

    __tablename__ = "notification_attempts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("notification_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(server_default=func.now())
    ok: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)


class AlertState(Base):
    """The last verdict of a subject (``schedule:<id>``, ``template:<id>``) and since when."""

    __tablename__ = "alert_states"

    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    outcome: Mapped[str | None] = mapped_column(String(16))
    outcome_since: Mapped[datetime | None] = mapped_column()
    failing_since: Mapped[datetime | None] = mapped_column()
    last_run_id: Mapped[int | None] = mapped_column(BigInteger)


class MaintenanceWindow(Base):
    """A one-off (start/end) or recurring (cron + duration in a zone) change freeze."""

    __tablename__ = "maintenance_windows"
    __table_args__ = (
        CheckConstraint(
            "(start_at IS NOT NULL AND end_at IS NOT NULL AND cron_expression IS NULL)"
            " OR (cron_expression IS NOT NULL AND duration_minutes IS NOT NULL"
            " AND start_at IS NULL AND end_at IS NULL)",
            name="one_off_or_recurring",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    start_at: Mapped[datetime | None] = mapped_column()
    end_at: Mapped[datetime | None] = mapped_column()
    cron_expression: Mapped[str | None] = mapped_column(String(255))
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    template_ids: Mapped[list[Any] | None] = mapped_column()
    schedule_ids: Mapped[list[Any] | None] = mapped_column()
    job_types: Mapped[list[Any] | None] = mapped_column()
    inventory_id: Mapped[int | None] = mapped_column(
        ForeignKey("inventories.id", ondelete="CASCADE")
    )
    is_global: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    owner: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
