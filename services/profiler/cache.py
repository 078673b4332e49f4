"""The profile cache in two key-value buckets (``service_runtime.buckets``): profiles (kept) and
claims (expiring).

A claim is a create-if-absent write, atomic on the server, so two replicas missing the same
exercise at once cannot both win. The claims bucket's max age makes a dead owner's claim
expire by itself; a live owner refreshes its claim while its call runs.
"""

import os
import socket
import time
from collections import OrderedDict

from nats.js import JetStreamContext

from contracts.plan import ExerciseProfile
from contracts.streams import EXERCISE_PROFILES, BucketSpec
from service_runtime.buckets import Bucket, Conflict

PROFILES_BUCKET = EXERCISE_PROFILES.name
CLAIMS_BUCKET = "exercise-profile-claims"
# Profiles this process read or wrote are kept in memory: the bucket is the shared record, but once
# an exercise is profiled its profile stays, and each plan asks for ~25 of them. Bounded in size,
# and in age so that a profile an operator replaced in the bucket reaches every replica.
REMEMBERED_PROFILES = 10_000
REMEMBER_SECONDS = 600.0


class KeyValueProfileCache:
    def __init__(self, profiles: Bucket[ExerciseProfile], claims: Bucket[str]) -> None:
        self._profiles = profiles
        self._claims = claims
        self._owner = f"{socket.gethostname()}:{os.getpid()}"
        self._revisions: dict[str, int] = {}
        self._remembered: OrderedDict[str, tuple[ExerciseProfile, float]] = OrderedDict()

    @classmethod
    async def open(cls, js: JetStreamContext, claim_ttl_seconds: float, replicas: int = 1) -> "KeyValueProfileCache":
        profiles = await Bucket.open(js, EXERCISE_PROFILES, ExerciseProfile, replicas=replicas)
        claims = await Bucket.open(js, BucketSpec(CLAIMS_BUCKET, claim_ttl_seconds), str, replicas=replicas)
        return cls(profiles, claims)

    async def get(self, key: str) -> ExerciseProfile | None:
        remembered = self._remembered.get(key)
        if remembered is not None and time.monotonic() < remembered[1]:
            return remembered[0]
        profile = await self._profiles.get(key)
        if profile is not None:
            self._remember(key, profile)
        return profile

    def _remember(self, key: str, profile: ExerciseProfile) -> None:
        self._remembered[key] = (profile, time.monotonic() + REMEMBER_SECONDS)
        self._remembered.move_to_end(key)
        if len(self._remembered) > REMEMBERED_PROFILES:
            self._remembered.popitem(last=False)

    async def claim(self, key: str) -> bool:
        try:
            self._revisions[key] = await self._claims.create(key, self._owner)
        except Conflict:
            return False
        return True

    async def refresh(self, key: str) -> bool:
        # A rewrite restarts the entry's age; compare-and-set, so a claim that expired and was
        # taken over meanwhile is not stolen back.
        try:
            self._revisions[key] = await self._claims.update(key, self._owner, last=self._revisions[key])
        except (KeyError, Conflict):
            return False
        return True

    async def put(self, key: str, profile: ExerciseProfile) -> None:
        await self._profiles.put(key, profile)
        self._remember(key, profile)
        await self.release(key)

    async def create(self, key: str, profile: ExerciseProfile) -> bool:
        """Store the profile unless the bucket already has one for ``key``: a create-if-absent, so
        a profile written meanwhile (by a replica, or an earlier pre-fill) is never overwritten.
        False when one was there."""
        try:
            await self._profiles.create(key, profile)
        except Conflict:
            return False
        self._remember(key, profile)
        return True

    async def release(self, key: str) -> None:
        self._revisions.pop(key, None)
        await self._claims.delete(key)
