"""Response models of /api/v1/classes (docs/api.md, Classes)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from server.classspec import Challenge


class LeaderEntry(BaseModel):
    rank: int
    student_id: str
    name: str
    best: float | None = Field(description="the student's best value of the metric within the limits")
    met_at: float | None = Field(description="seconds from the start of the challenge to meeting it; null: not yet")


class RoundPublic(BaseModel):
    challenge: Challenge
    goal: str = Field(description="the goal in words")
    started_at: str
    ends_at: str
    seconds_left: float
    running: bool
    leaderboard: list[LeaderEntry]


class ClassPublic(BaseModel):
    id: str
    code: str | None = Field(description="the join code while the class is open")
    name: str
    status: str = Field(description="open | ended")
    mode: str = Field(description="following (students see the presenter) | released (they may make it theirs)")
    panel: str | None = Field(description="the panel the presenter shows")
    presenter_id: str
    following: str = Field(description="the session the class sees: the spotlighted student's or the presenter's")
    spotlight: str | None
    spotlight_name: str | None
    students: int
    expires_at: str
    challenge: RoundPublic | None = Field(description="the last challenge set, running or over")
    version: int = Field(description="bumped by every change")


class ClassSummary(BaseModel):
    id: str
    name: str
    status: str = Field(description="open | ended")
    code: str | None = Field(description="the join code while the class is open")
    created_at: str
    students: int
    rounds: int = Field(description="challenges set")
    dashboard_url: str


class ClassList(BaseModel):
    items: list[ClassSummary] = Field(description="the classes this browser runs (its teacher cookies), newest first")


class ClassResults(BaseModel):
    class_: ClassPublic = Field(alias="class")
    students: list[str] = Field(description="everyone who joined, by name")
    rounds: list[RoundPublic] = Field(description="every challenge set, oldest first, each with its leaderboard")


class ClassOpened(ClassPublic):
    teacher_token: str = Field(description="send as 'Authorization: Bearer <token>' to run the class")
    join_url: str
    dashboard_url: str
    stream: str


class ClassJoined(BaseModel):
    class_id: str
    student_id: str
    student_token: str = Field(description="send as 'Authorization: Bearer <token>' for the student's own moves")
    name: str = Field(description="the name the class sees (made unique with a number if it was taken)")
    page_url: str
    stream: str
    class_: ClassPublic = Field(alias="class")


class RosterEntry(BaseModel):
    id: str
    name: str
    connected: bool
    last_seen: str | None
    session_id: str | None = Field(description="the student's own session, once they made one")
    status: str | None
    epoch: int | None
    metrics: dict[str, float | None] | None
    neurons: int | None
    breaks: list[str] = Field(description="the challenge's limits their session breaks, in words")
    best: float | None
    met_at: float | None
    map: str | None = Field(description="changes whenever their decision map does (for caching the picture)")


class ClassDashboard(BaseModel):
    class_: ClassPublic = Field(alias="class")
    roster: list[RosterEntry]
