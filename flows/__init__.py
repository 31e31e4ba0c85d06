"""Prefect flows: thin composition of ``cohortpool.tasks`` into the site, hub and nightly runs.

``site_edge`` runs at a hospital, ``hub`` at the consortium, ``nightly`` runs both for every configured
site. No rule lives here: every step is a task in :mod:`cohortpool.tasks` that calls the composition layer.

The flow modules do not use ``from __future__ import annotations``: Prefect validates a flow run's
parameters against the flow's annotations, and a deployment run loads the flow from its entrypoint,
where string annotations such as ``RunConfig | None`` cannot be resolved.
"""
