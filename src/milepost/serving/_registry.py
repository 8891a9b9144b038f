"""The registry side of endpoints that track a stage (see :mod:`milepost.serving.service`).

Each rollout on a tracking endpoint changes the endpoint's spec and the registry in one
transaction: :class:`RegistryLink` gives the deployment service the pieces that run in
it (the model's lock, taken before the endpoint's; hooks that run once the new spec is
written) and the admission of a version before it takes traffic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from milepost.errors import Conflict, InvalidInput

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Connection

    from milepost.models.service import ModelService
    from milepost.promotion.service import PromotionService
    from milepost.serving.spec import EndpointSpec, Track

    Hook = Callable[[Connection, EndpointSpec, EndpointSpec], None]

__all__ = ["IN_PROGRESS", "RegistryLink", "tracked_stage"]

#: rollout statuses in which a rollout is still under way
IN_PROGRESS = ("preview", "progressing", "mirroring", "in_progress", "paused")
#: how a rollout kind is named in the verdict it records on a promotion request
_HOW = {"canary": "canary", "blue_green": "blue/green", "rolling": "rolling update"}


def tracked_stage(stage: str) -> str:
    """The stage an endpoint may track (Production), or InvalidInput saying why not."""
    if stage.capitalize() == "Production":
        return "Production"
    raise InvalidInput(
        f"An endpoint can track Production, not {stage!r}"
        + (
            " (Staging holds several versions at once)."
            if stage.capitalize() in ("Staging", "None", "Archived")
            else "."
        ),
        hint="To serve another version, pin it: `milepost endpoints create NAME --model MODEL "
        "--version N`.",
    )


class RegistryLink:
    """What a tracking endpoint's rollouts do to the registry, in their transaction."""

    def __init__(self, models: ModelService, promotion: PromotionService) -> None:
        self.models = models
        self.promotion = promotion

    def lock(self, spec: EndpointSpec) -> Callable[[Connection], None] | None:
        """Lock the tracked model's row (before the endpoint's: one order everywhere)."""
        if spec.track is None:
            return None
        model = spec.track.model

        def lock(conn: Connection) -> None:
            self.models.store.lock_model(conn, model)

        return lock

    def track(self, endpoint: str, model: str, stage: str) -> tuple[Track, int]:
        """What a new endpoint tracking ``stage`` of ``model`` tracks, and the version it
        serves now.

        Raises:
            InvalidInput: a stage other than Production.
            Conflict: the model has no Production version yet.
        """
        from milepost.serving.spec import Track

        track = Track(model=model, stage=tracked_stage(stage))
        version = self.models.get_model(model).production_version
        if version is None:
            raise Conflict(
                f"{model} has no version in Production, so an endpoint cannot track it yet.",
                hint=f"Promote one (`milepost models promote {model} N --to Production`), "
                f"or pin a version: `milepost endpoints create {endpoint} --model {model} "
                "--version N`.",
            )
        return track, version

    def still_production(
        self, model: str, version: int, endpoint: str
    ) -> Callable[[Connection], None]:
        """Lock ``model`` and refuse (``Conflict``) unless ``version`` is still its
        Production: run before a new tracking endpoint is written."""

        def still(conn: Connection) -> None:
            row = self.models.store.lock_model(conn, model)
            now = self.models.store.production_in(conn, row)
            if now != version:
                raise Conflict(
                    f"Production of {model} moved to v{now} while endpoint {endpoint!r} was "
                    "being created; nothing was created.",
                    hint="Create it again.",
                )

        return still

    @staticmethod
    def model_for(spec: EndpointSpec, model: str | None) -> str:
        """The model a new variant comes from (a tracking endpoint: its model only)."""
        if spec.track is None:
            return model or spec.primary.model
        if model is not None and model != spec.track.model:
            raise InvalidInput(
                f"This endpoint tracks {spec.track}: it serves versions of "
                f"{spec.track.model} only, not of {model}.",
                hint=f"Serve {model} on another endpoint: `milepost endpoints create NAME "
                f"--model {model}`.",
            )
        return spec.track.model

    def admit(self, endpoint: str, spec: EndpointSpec, version: int, how: str) -> str | None:
        """The promotion request a rollout of ``version`` carries on a tracking endpoint
        (None on a pinned one). Its gates run before the version takes traffic.

        Raises:
            GateFailed: the gates refused the version.
            Conflict: an approval is pending (named), or the move is illegal.
        """
        if spec.track is None:
            return None
        request = self.promotion.rollouts.request_for(
            spec.track.model, version, endpoint, reason=f"{how} on endpoint {endpoint}"
        )
        return request.request_id

    def claim(self, endpoint: str, request_id: str | None) -> Hook | None:
        """A hook: the rollout starts carrying its request."""
        if request_id is None:
            return None
        promotion = self.promotion

        def claim(conn: Connection, _old: EndpointSpec, _new: EndpointSpec) -> None:
            promotion.rollouts.claim_in(conn, request_id, endpoint)

        return claim

    def complete(self, endpoint: str) -> Hook:
        """A hook: when the change finished a rollout, its version enters Production."""
        rollouts = self.promotion.rollouts

        def complete(conn: Connection, _old: EndpointSpec, new: EndpointSpec) -> None:
            ro = new.rollout
            if ro is None or ro.request_id is None or ro.status not in ("succeeded", "switched"):
                return
            verdict = rollouts.verdict(endpoint, _HOW.get(ro.kind, ro.kind), True, ro.detail)
            rollouts.complete_in(conn, ro.request_id, endpoint, verdict)

        return complete

    def undo(self, endpoint: str, reason: str) -> Hook:
        """A hook: the rollout was rolled back. Before it completed, its request ends
        ``rolled_back`` and the registry never moved; after, the registry returns to the
        previous Production version too."""
        rollouts = self.promotion.rollouts

        def undo(conn: Connection, old: EndpointSpec, _new: EndpointSpec) -> None:
            ro = old.rollout
            if ro is None or ro.request_id is None:
                return
            if ro.status in IN_PROGRESS:
                verdict = rollouts.verdict(endpoint, _HOW.get(ro.kind, ro.kind), False, reason)
                rollouts.abort_in(conn, ro.request_id, verdict)
                return
            prev = old.variant(ro.previous or "")
            if prev is None:  # pragma: no cover - the spec change refuses this first
                return
            rollouts.revert_in(conn, ro.request_id, endpoint, previous=prev.version, reason=reason)

        return undo
