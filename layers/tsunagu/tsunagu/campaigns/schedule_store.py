"""One-off launch schedules in EventBridge Scheduler: ``at(...)`` in JST that puts the campaign's
launch message on the campaign queue, then deletes itself. (The local stack fires them on demand:
``python -m tsunagu_local fire-schedules``.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from tsunagu.billing.usage import JST
from tsunagu.infrastructure.aws import client


class EventBridgeLaunchSchedules:
    def __init__(self, queue_arn: str, role_arn: str, group: str = "default"):
        self.queue_arn = queue_arn
        self.role_arn = role_arn
        self.group = group

    @property
    def scheduler(self) -> Any:
        return client("scheduler")

    def create(self, name: str, at: datetime, body: str) -> None:
        local = at.astimezone(JST).replace(tzinfo=None).isoformat(timespec="seconds")
        self.scheduler.create_schedule(
            Name=name,
            GroupName=self.group,
            ScheduleExpression=f"at({local})",
            ScheduleExpressionTimezone="Asia/Tokyo",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": self.queue_arn, "RoleArn": self.role_arn, "Input": body},
            ActionAfterCompletion="DELETE",
        )

    def delete(self, name: str) -> None:
        try:
            self.scheduler.delete_schedule(Name=name, GroupName=self.group)
        except ClientError as e:
            if e.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
